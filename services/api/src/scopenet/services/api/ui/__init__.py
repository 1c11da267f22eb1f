"""The web UI at ``/ui/`` (docs/ui.md): server-rendered pages over the same controllers, backends and
policy as the JSON API, so a page shows a caller exactly what the API would answer them.

- ``data``: the one module that fetches (resources' backends, ``IpViews``, ``Explainer``);
- ``scopemap``, ``findings``, ``poolmap``: pure, from those dicts to what the templates draw;
- ``session``: login (pasted token or one-time link), the session cookie, CSRF, security headers;
- ``routes``: the aiohttp handlers and the Jinja2 environment (autoescaped, SVG included).
"""
