"""Video: probing and decoding, segmenters (one class per file behind one interface), frame sampling, clip export."""
