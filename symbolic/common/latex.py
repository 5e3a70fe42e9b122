"""Plain text made safe for LaTeX, for every table and document the toolkit writes."""

LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Plain text made safe for LaTeX (the ten special characters)."""
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in text)
