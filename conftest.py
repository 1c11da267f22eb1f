"""Settings every test of the workspace shares (each distribution's tests/ and the root tests/).

Hypothesis' per-example deadline measures wall time, which on a shared two-core machine says more
about the neighbours than about the code: the properties are checked, the clock is not.
"""

from hypothesis import settings

settings.register_profile("scopenet", deadline=None)
settings.load_profile("scopenet")
