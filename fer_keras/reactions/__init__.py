"""Stage 5, reactions: emotion timelines of viewers' faces in videos, and reactions over photo sets (fer-reactions).

Owns reading videos at a sampling rate and photo sets grouped by sub-folder
(``sources``), keeping each viewer's identity across frames with the norfair tracker
(``tracking``), smoothing each track's probabilities over time (``smoothing``), ad
segments from ``--align`` (``segments``), the output folder's format and summary
statistics (``summary``: the contract the report and the web API read), analysing one
source (``analyze``), a whole run built aside and swapped in (``run``), the annotated
MP4 (``annotate``) and the HTML reaction report (``report``, ``report_figures``).

May import: the core modules, ``fer_keras.data``, ``fer_keras.model`` and
``fer_keras.inference`` (faces, the crop rule, the ``Predictor``). ``fer_keras.serve``
and ``fer_keras.cli`` import it. Importing it is cheap: OpenCV and norfair load with the
modules that use them, TensorFlow only with the keras runtime.
"""
