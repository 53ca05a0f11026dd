"""What the cleanroom makes, by sub-domain: culture (batches, flasks, events, lots) and release."""

from manufacturing.models.culture import *  # noqa: F403
from manufacturing.models.culture import __all__ as _culture_all
from manufacturing.models.product import *  # noqa: F403
from manufacturing.models.product import __all__ as _product_all
from manufacturing.models.release import *  # noqa: F403
from manufacturing.models.release import __all__ as _release_all

__all__ = [*_culture_all, *_release_all, *_product_all]
