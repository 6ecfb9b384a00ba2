"""The Jinja2 set-up shared by the two HTML reports (fer-report and fer-reactions' report.html).

Both render self-contained pages from a template folder with the same rules: HTML
autoescaping, undefined names as errors (a typo in a template fails loudly, in tests), and
block tags that leave no blank lines behind.
"""

from __future__ import annotations

from pathlib import Path


def template_environment(folder: str | Path):
    """A ``jinja2.Environment`` loading templates from ``folder`` (jinja2 imported on first use).

    Example:
        >>> env = template_environment("fer_keras/report/templates")
        >>> env.undefined.__name__
        'StrictUndefined'
    """
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
