"""Reading a log, the CLI's help and the analysis do not load the network's stack."""

import subprocess
import sys

HEAVY = ("torch", "e3nn", "dscribe", "sklearn")


def test_light_imports_do_not_load_torch():
    code = ("import sys, icemon, icemon.io.log, icemon.analysis.fronts, icemon.analysis.report, icemon.cli; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_does_not_load_torch_and_pipeline_still_imports():
    code = ("import sys; from icemon.cli import parser; parser().format_help(); "
            f"assert not [m for m in {HEAVY!r} if m in sys.modules]; "
            "from icemon import Pipeline, IcemonModel; print(Pipeline.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Pipeline"
