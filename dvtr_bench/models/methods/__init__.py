"""The built-in retrieval methods, one module per method.

Every module here is imported when a method is first looked up (``dvtr_bench.models.registry`` lists this
package), and each registers its class with ``@register``. Adding a method is one new module here plus its
recipe in ``baselines/`` (docs/methods.md, "Adding a method").
"""
