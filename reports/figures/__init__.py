"""The figures: each one function ``draw(inputs) -> Drawn``, registered by name and section.

The report (:mod:`reports.compose`) draws the sections ``predictions``, ``measurements`` and
``agreement``; ``python -m dynamics.simulate SCENARIO --plot`` draws the quick look of the
section ``simulation`` and ``python -m dynamics.phase`` the section ``phase``, all with the same
panels and :mod:`reports.style`. A new figure is one decorated function in one module::

    @figure("my_figure", "Title", section="measurements")
    def my_figure(inputs: Inputs) -> Drawn:
        ...

Modules: :mod:`~reports.figures.base` (Inputs, Drawn, the registry, axis helpers),
:mod:`~reports.figures.phase` (phase_portrait; phase_flow, phase_line, phase_collapse,
phase_alignment), :mod:`~reports.figures.representation` (sigma_distance),
:mod:`~reports.figures.agreement` (prediction_error), :mod:`~reports.figures.sigma`
(sigma_prediction), :mod:`~reports.figures.predictor`
(wp_eigenvalues, wp_spectrum_epochs, wp_heatmaps), :mod:`~reports.figures.conservation`
(conservation_residual) and :mod:`~reports.figures.simulation` (the quick looks).

Figures read result files (:class:`reports.inputs.Result`). Of dynamics they use definitions only:
the per-mode right-hand side :func:`dynamics.models.eigenmodes.mode_rhs` (the report's phase
portrait draws its stream lines); the phase diagrams are drawn from the numbers
:mod:`dynamics.phase` computed and stored, fixed points and their stability included.
"""

import importlib

from reports.figures.base import (
    REGISTRY,
    SECTIONS,
    Drawn,
    Inputs,
    Registered,
    absent,
    draw_section,
    figure,
    registered,
    save,
    write_file_figure,
)

#: Imported in this order: within a section, figures come in the order of registration.
MODULES = (
    "phase",
    "representation",
    "agreement",
    "sigma",
    "predictor",
    "conservation",
    "simulation",
    "collapse",
)
for _module in MODULES:
    importlib.import_module(f"reports.figures.{_module}")

from reports.figures.simulation import write_quick_look  # noqa: E402

__all__ = [
    "MODULES",
    "REGISTRY",
    "SECTIONS",
    "Drawn",
    "Inputs",
    "Registered",
    "absent",
    "draw_section",
    "figure",
    "registered",
    "save",
    "write_file_figure",
    "write_quick_look",
]
