"""Stage 2, model: architecture spec files and the Keras models built from them.

Owns ``architectures/*.json`` as data: the declarative layer table and one-pass
validation (``spec``, no TensorFlow) and building a ``keras.Sequential`` from a
validated spec (``builder``, Keras imported lazily).

May import: the core modules only.
"""
