"""The OpenMM hook with the real OpenMM (CPU platform): TIP3P water built from GenIce ice
with hydrogens, units from OpenMM, labels equal to offline classification."""

import numpy as np
import pytest

openmm = pytest.importorskip("openmm")

from openmm import app, unit  # noqa: E402

import icemon.hooks.openmm  # noqa: E402
from icemon import FrameError, Pipeline  # noqa: E402
from icemon.analysis import Log  # noqa: E402

from .conftest import shipped_phases  # noqa: E402

PHASES = shipped_phases()


def _simulation(height: float = 12.0, temperature: float = 50.0):
    """Ice Ih as rigid TIP3P water (GenIce hydrogens), PME, Langevin at ``temperature`` K
    (TIP3P's ice melts near 146 K), 2 fs; also the atoms (Å)."""
    from icemon.demo import tip4p

    atoms = tip4p.ice("Ih", height)
    top = app.Topology()
    chain = top.addChain()
    symbols = atoms.get_chemical_symbols()
    for k in range(0, len(atoms), 3):
        res = top.addResidue("HOH", chain)
        o = top.addAtom("O", app.element.oxygen, res)
        h1 = top.addAtom("H1", app.element.hydrogen, res)
        h2 = top.addAtom("H2", app.element.hydrogen, res)
        top.addBond(o, h1)
        top.addBond(o, h2)
        assert symbols[k:k + 3] == ["O", "H", "H"]
    cell = np.asarray(atoms.cell[:]) / 10.0  # nm
    top.setPeriodicBoxVectors([openmm.Vec3(*row) for row in cell] * unit.nanometer)
    ff = app.ForceField("tip3p.xml")
    system = ff.createSystem(top, nonbondedMethod=app.PME, nonbondedCutoff=0.7 * unit.nanometer,
                             constraints=app.HBonds, rigidWater=True)
    if temperature > 146:  # an ice|liquid slab: the lower half held, the upper half melts
        hold = openmm.CustomExternalForce("k*periodicdistance(x, y, z, x0, y0, z0)^2")
        hold.addGlobalParameter("k", 5e4)  # kJ/mol/nm²
        for name in ("x0", "y0", "z0"):
            hold.addPerParticleParameter(name)
        z_mid = np.asarray(atoms.cell[:])[2, 2] / 2
        held = atoms.positions[::3, 2] < z_mid  # per molecule
        for m in np.flatnonzero(held):
            for i in range(3 * m, 3 * m + 3):
                hold.addParticle(int(i), list(atoms.positions[i] / 10.0))
        system.addForce(hold)
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin,
                                                 1 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(7)
    sim = app.Simulation(top, system, integrator, openmm.Platform.getPlatformByName("CPU"),
                         {"Threads": "1"})
    sim.context.setPositions(atoms.positions / 10.0 * unit.nanometer)
    sim.minimizeEnergy(maxIterations=100)  # TIP3P's constraints on GenIce's geometry
    sim.context.setVelocitiesToTemperature(temperature * unit.kelvin, 7)
    if temperature > 146:
        sim.held = held  # which molecules are held in ice
    return sim, len(atoms) // 3


def test_openmm_reporter_logs_the_multiples_of_every_equal_to_offline(tmp_path):
    sim, n = _simulation()
    sim.currentStep = 7  # a restarted run, not starting on a multiple of every
    sim.context.setTime(7 * 0.002)  # ps
    seen = []
    with icemon.hooks.openmm.attach(sim, tmp_path / "o.h5", every=10,
                                    on_frame=seen.append) as hook:
        sim.step(13)
        hook.run(12)
    assert [r.frame.step for r in seen] == [10, 20, 30] and hook.errors == []
    assert sim not in [getattr(r, "simulation", None) for r in sim.reporters]  # removed
    with Log(tmp_path / "o.h5") as log:
        assert log.steps.tolist() == [10, 20, 30] and log.n_atoms == n
        np.testing.assert_allclose(log.times, [0.02, 0.04, 0.06], atol=1e-9)  # 2 fs, in ps
        labels = np.array([log.labels(k) for k in range(3)])
    # ordered, mostly Ih: TIP3P's minimised ice in a TIP4P/Ice-density box is strained, and
    # some of it reads `unknown` (ordered, not a known ice), none of it liquid
    assert (labels == PHASES.index("Ih")).mean() > 0.8
    assert (labels == PHASES.index("liquid")).mean() < 0.02
    offline = Pipeline()  # the same frames, classified after the run
    for k, res in enumerate(seen):
        np.testing.assert_array_equal(offline.process(res.frame).labels, labels[k])
        assert res.frame.cell[0, 0] > 14  # Å, not nm


def test_openmm_oxygen_selection_and_stop_when(tmp_path):
    sim, n = _simulation()
    with pytest.raises(FrameError, match="no atom of element or name .OW.*H1, H2, O"):
        icemon.hooks.openmm.attach(sim, tmp_path / "x.h5", every=10, oxygens="OW")
    hook = icemon.hooks.openmm.attach(sim, tmp_path / "s.h5", every=5,
                                      stop_when="step >= 10 and fraction('liquid') < 0.05")
    with hook:
        assert len(hook.indices) == n  # by element: every water oxygen
        hook.run(100)
    assert sim.currentStep == 10 and hook.stopped[0] == 10
    with Log(tmp_path / "s.h5") as log:
        assert log.steps.tolist() == [0, 5, 10] and log.stopped["step"] == 10


def test_openmm_ice_liquid_slab_labels_equal_offline(tmp_path):
    """TIP3P water with hydrogens, the lower half of the box held in ice Ih, the upper half
    melted at 600 K (2 ps) and monitored there: ice below, liquid above, as offline."""
    sim, n = _simulation(height=20.0, temperature=600.0)
    sim.step(1000)  # 2 ps: the free half melts
    seen = []
    with icemon.hooks.openmm.attach(sim, tmp_path / "slab.h5", every=50,
                                    on_frame=seen.append) as hook:
        hook.run(100)
    assert [r.frame.step for r in seen] == [1000, 1050, 1100] and hook.errors == []
    offline = Pipeline()
    for res in seen:
        labels = offline.process(res.frame).labels
        np.testing.assert_array_equal(res.labels, labels)
        # molecules more than 4.5 Å (along z, the slab normal) from the other half: the
        # held ones are ice Ih, the melted ones liquid (the layers between are the
        # interface, issue of their own)
        lz = res.frame.cell[2, 2]
        z = res.frame.positions[:, 2]
        dz = np.abs(z[:, None] - z[None, :])
        dz = np.minimum(dz, lz - dz % lz)
        held = sim.held
        deep_held = held & (dz[:, ~held].min(axis=1) > 4.5)
        deep_free = ~held & (dz[:, held].min(axis=1) > 4.5)
        assert deep_held.sum() > 40 and deep_free.sum() > 40
        assert (labels[deep_held] == PHASES.index("Ih")).mean() > 0.95
        assert (labels[deep_free] == PHASES.index("liquid")).mean() > 0.95
