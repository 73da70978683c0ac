"""Search spaces: parameter domains and the conditions between them."""

from tunesmith.space.domains import Categorical, Domain, Float, Int
from tunesmith.space.search_space import SearchSpace

__all__ = ["Categorical", "Domain", "Float", "Int", "SearchSpace"]
