"""The dataset build pipeline: jobs per source video, executors, splits, audit and Hub layout."""
