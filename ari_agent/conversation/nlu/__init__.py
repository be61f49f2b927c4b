"""Intent classification and out-of-scope rejection for the open "how can I help?" turn.

Pure: no I/O beyond reading local model files once at build time.

>>> clf = build_classifier([IntentSpec("faq_hours", ("when are you open",))], embeddings=False)
>>> clf.classify("um what time do you open").intent
'faq_hours'
"""

from .classifier import HybridIntentClassifier, build_classifier, split_clauses
from .encoder import EncoderUnavailable, MiniLmEncoder, load_encoder
from .interface import Classification, IntentClassifier, IntentSpec
from .normalise import normalise_transcript

__all__ = [
    "Classification",
    "EncoderUnavailable",
    "HybridIntentClassifier",
    "IntentClassifier",
    "IntentSpec",
    "MiniLmEncoder",
    "build_classifier",
    "load_encoder",
    "normalise_transcript",
    "split_clauses",
]
