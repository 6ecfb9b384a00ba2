"""Stage 2, model: architecture spec files and the Keras models built from them.

Owns ``architectures/*.json`` as data: the declarative layer table and one-pass
validation (``spec``, no TensorFlow), building a ``keras.Sequential`` from a
validated spec (``builder``, Keras imported lazily), and a trained model's saved form:
the model folder ``models/<name>/`` with its metadata schema (``model_folder``), the
crop rule it records (``crop``) and its optional class-prior correction (``class_prior``).

May import: the core modules only.
"""
