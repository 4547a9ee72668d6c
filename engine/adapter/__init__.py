"""The LangChain adapter: the engine applied around the host's model factory.

::

    engine = PolicyEngine.from_file("policies/pipeshub-default.yaml")
    get_generator_model = wrap_factory(get_generator_model, engine)
"""

from engine.adapter.callsite import code_location, resolve_call_site
from engine.adapter.engine import PolicyEngine
from engine.adapter.factory import wrap_factory

__all__ = ["PolicyEngine", "code_location", "resolve_call_site", "wrap_factory"]
