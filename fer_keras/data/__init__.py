"""Stage 1, data: dataset folders and everything done to them before a model sees them.

Owns the ``<root>/{train,valid,test}/<emotion>/`` layout (``folders``), decoding images
(``images``), statistics and sharpness (``stats``, ``sharpness``), cleaning and its
reversible quarantine (``clean``, ``quarantine``), the FER2013 CSV import
(``csv_import``), the synthetic demo dataset (``demo``), balancing recipes and the
balancer (``recipe``, ``balance``) and the in-memory ``tf.data`` training pipeline with
its augmentation (``pipeline``).

May import: the core modules (``fer_keras.constants``, ``errors``, ``validation``,
``atomic``) only. TensorFlow is imported lazily by ``pipeline`` alone, so every
``fer-data`` and ``fer-balance`` command runs without it.
"""
