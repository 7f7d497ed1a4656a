"""Real solid harmonics r^l Y_lm(r̂) for l ≤ 8, as straight-line code for numba.

:mod:`icemon.descriptors.compiled` evaluates them once per neighbour pair; a loop over
the recurrence in l and m ran ~5× slower than straight-line code (58 against 12 ns per
pair for l ≤ 4, measured in numba), so the function below is generated from the
recurrence by :func:`source` and checked in (``python -m icemon.descriptors.harmonics``
rewrites it; a test checks that it is current).

Convention: ``out[l*l + l + m]`` for m = -l..l holds N_lm Q_l^|m|(z, r²) times
Re (x + iy)^m for m ≥ 0 and Im (x + iy)^|m| for m < 0, with the Legendre-type
recurrence Q_l^m = ((2l-1) z Q_{l-1}^m - (l+m-1) r² Q_{l-2}^m) / (l-m),
Q_m^m = (2m-1)!!, and N_lm making the Y_lm orthonormal on the unit sphere. The SOAP
power spectrum sums over m within each l, so any orthonormal real basis gives the same
numbers; signs and the order within an l do not matter.
"""

from __future__ import annotations

import math

L_MAX = 8
"""Largest degree the generated function evaluates (models with a larger SOAP ``l_max``
are described by dscribe)."""

MARKER = "# --- generated below: do not edit (python -m icemon.descriptors.harmonics) ---"


def source(l_max: int = L_MAX) -> str:
    """The generated part of this module: the numba function for degrees 0..``l_max``
    (its ``lmax`` argument stops it early at run time)."""
    lines = ["", "from numba import njit  # noqa: E402", "", "",
             "@njit(cache=True, nogil=True)",
             "def solid_harmonics(x, y, z, lmax, out):  # pragma: no cover (compiled)",
             "    r2 = x * x + y * y + z * z",
             "    c0 = 1.0",
             "    s0 = 0.0"]
    for deg in range(l_max + 1):
        if deg > 0:
            lines += [f"    if lmax < {deg}:", "        return",
                      f"    c{deg} = c{deg - 1} * x - s{deg - 1} * y",
                      f"    s{deg} = c{deg - 1} * y + s{deg - 1} * x"]
        for m in range(deg + 1):
            if deg == m:
                expr = repr(float(math.prod(range(1, 2 * m, 2))))
            elif deg == m + 1:
                expr = f"{float(2 * m + 1)!r} * z * q{m}_{m}"
            else:
                a = (2 * deg - 1) / (deg - m)
                b = (deg + m - 1) / (deg - m)
                expr = f"{a!r} * z * q{deg - 1}_{m} - {b!r} * r2 * q{deg - 2}_{m}"
            lines.append(f"    q{deg}_{m} = {expr}")
            norm = math.sqrt((2 * deg + 1) / (4 * math.pi) * math.factorial(deg - m)
                             / math.factorial(deg + m) * (2.0 if m else 1.0))
            base = deg * deg + deg
            if m == 0:
                lines.append(f"    out[{base}] = {norm!r} * q{deg}_0")
            else:
                lines.append(f"    out[{base + m}] = {norm!r} * q{deg}_{m} * c{m}")
                lines.append(f"    out[{base - m}] = {norm!r} * q{deg}_{m} * s{m}")
    return "\n".join(lines) + "\n"


def _split(text: str) -> tuple[str, str]:
    """(hand-written part up to the marker line, generated part after it)."""
    at = text.index("\n" + MARKER + "\n") + len(MARKER) + 2
    return text[:at], text[at:]


if __name__ == "__main__":  # pragma: no cover
    from pathlib import Path

    path = Path(__file__)
    path.write_text(_split(path.read_text())[0] + source())
    # numba's disk cache keys a kernel on its own file only: renew the caller's
    path.with_name("compiled.py").touch()

# --- generated below: do not edit (python -m icemon.descriptors.harmonics) ---

from numba import njit  # noqa: E402


@njit(cache=True, nogil=True)
def solid_harmonics(x, y, z, lmax, out):  # pragma: no cover (compiled)
    r2 = x * x + y * y + z * z
    c0 = 1.0
    s0 = 0.0
    q0_0 = 1.0
    out[0] = 0.28209479177387814 * q0_0
    if lmax < 1:
        return
    c1 = c0 * x - s0 * y
    s1 = c0 * y + s0 * x
    q1_0 = 1.0 * z * q0_0
    out[2] = 0.4886025119029199 * q1_0
    q1_1 = 1.0
    out[3] = 0.4886025119029199 * q1_1 * c1
    out[1] = 0.4886025119029199 * q1_1 * s1
    if lmax < 2:
        return
    c2 = c1 * x - s1 * y
    s2 = c1 * y + s1 * x
    q2_0 = 1.5 * z * q1_0 - 0.5 * r2 * q0_0
    out[6] = 0.6307831305050401 * q2_0
    q2_1 = 3.0 * z * q1_1
    out[7] = 0.3641828101973597 * q2_1 * c1
    out[5] = 0.3641828101973597 * q2_1 * s1
    q2_2 = 3.0
    out[8] = 0.18209140509867985 * q2_2 * c2
    out[4] = 0.18209140509867985 * q2_2 * s2
    if lmax < 3:
        return
    c3 = c2 * x - s2 * y
    s3 = c2 * y + s2 * x
    q3_0 = 1.6666666666666667 * z * q2_0 - 0.6666666666666666 * r2 * q1_0
    out[12] = 0.7463526651802308 * q3_0
    q3_1 = 2.5 * z * q2_1 - 1.5 * r2 * q1_1
    out[13] = 0.3046971996429772 * q3_1 * c1
    out[11] = 0.3046971996429772 * q3_1 * s1
    q3_2 = 5.0 * z * q2_2
    out[14] = 0.09635371475468514 * q3_2 * c2
    out[10] = 0.09635371475468514 * q3_2 * s2
    q3_3 = 15.0
    out[15] = 0.0393362393284429 * q3_3 * c3
    out[9] = 0.0393362393284429 * q3_3 * s3
    if lmax < 4:
        return
    c4 = c3 * x - s3 * y
    s4 = c3 * y + s3 * x
    q4_0 = 1.75 * z * q3_0 - 0.75 * r2 * q2_0
    out[20] = 0.8462843753216345 * q4_0
    q4_1 = 2.3333333333333335 * z * q3_1 - 1.3333333333333333 * r2 * q2_1
    out[21] = 0.26761861742291565 * q4_1 * c1
    out[19] = 0.26761861742291565 * q4_1 * s1
    q4_2 = 3.5 * z * q3_2 - 2.5 * r2 * q2_2
    out[22] = 0.063078313050504 * q4_2 * c2
    out[18] = 0.063078313050504 * q4_2 * s2
    q4_3 = 7.0 * z * q3_3
    out[23] = 0.016858388283618388 * q4_3 * c3
    out[17] = 0.016858388283618388 * q4_3 * s3
    q4_4 = 105.0
    out[24] = 0.005960340337611202 * q4_4 * c4
    out[16] = 0.005960340337611202 * q4_4 * s4
    if lmax < 5:
        return
    c5 = c4 * x - s4 * y
    s5 = c4 * y + s4 * x
    q5_0 = 1.8 * z * q4_0 - 0.8 * r2 * q3_0
    out[30] = 0.9356025796273888 * q5_0
    q5_1 = 2.25 * z * q4_1 - 1.25 * r2 * q3_1
    out[31] = 0.2415715473043717 * q5_1 * c1
    out[29] = 0.2415715473043717 * q5_1 * s1
    q5_2 = 3.0 * z * q4_2 - 2.0 * r2 * q3_2
    out[32] = 0.04565273128546023 * q5_2 * c2
    out[28] = 0.04565273128546023 * q5_2 * s2
    q5_3 = 4.5 * z * q4_3 - 3.5 * r2 * q3_3
    out[33] = 0.009318824751147627 * q5_3 * c3
    out[27] = 0.009318824751147627 * q5_3 * s3
    q5_4 = 9.0 * z * q4_4
    out[34] = 0.002196468058075176 * q5_4 * c4
    out[26] = 0.002196468058075176 * q5_4 * s4
    q5_5 = 945.0
    out[35] = 0.0006945841871324552 * q5_5 * c5
    out[25] = 0.0006945841871324552 * q5_5 * s5
    if lmax < 6:
        return
    c6 = c5 * x - s5 * y
    s6 = c5 * y + s5 * x
    q6_0 = 1.8333333333333333 * z * q5_0 - 0.8333333333333334 * r2 * q4_0
    out[42] = 1.0171072362820548 * q6_0
    q6_1 = 2.2 * z * q5_1 - 1.2 * r2 * q4_1
    out[43] = 0.22195099524523101 * q6_1 * c1
    out[41] = 0.22195099524523101 * q6_1 * s1
    q6_2 = 2.75 * z * q5_2 - 1.75 * r2 * q4_2
    out[44] = 0.03509353369580661 * q6_2 * c2
    out[40] = 0.03509353369580661 * q6_2 * s2
    q6_3 = 3.6666666666666665 * z * q5_3 - 2.6666666666666665 * r2 * q4_3
    out[45] = 0.005848922282634435 * q6_3 * c3
    out[39] = 0.005848922282634435 * q6_3 * s3
    q6_4 = 5.5 * z * q5_4 - 4.5 * r2 * q4_4
    out[46] = 0.0010678622237644956 * q6_4 * c4
    out[38] = 0.0010678622237644956 * q6_4 * s4
    q6_5 = 11.0 * z * q5_5
    out[47] = 0.00022766899107568562 * q6_5 * c5
    out[37] = 0.00022766899107568562 * q6_5 * s5
    q6_6 = 10395.0
    out[48] = 6.57223766418388e-05 * q6_6 * c6
    out[36] = 6.57223766418388e-05 * q6_6 * s6
    if lmax < 7:
        return
    c7 = c6 * x - s6 * y
    s7 = c6 * y + s6 * x
    q7_0 = 1.8571428571428572 * z * q6_0 - 0.8571428571428571 * r2 * q5_0
    out[56] = 1.0925484305920792 * q7_0
    q7_1 = 2.1666666666666665 * z * q6_1 - 1.1666666666666667 * r2 * q5_1
    out[57] = 0.20647224590289673 * q7_1 * c1
    out[55] = 0.20647224590289673 * q7_1 * s1
    q7_2 = 2.6 * z * q6_2 - 1.6 * r2 * q5_2
    out[58] = 0.028097313806030644 * q7_2 * c2
    out[54] = 0.028097313806030644 * q7_2 * s2
    q7_3 = 3.25 * z * q6_3 - 2.25 * r2 * q5_3
    out[59] = 0.003973560225074135 * q7_3 * c3
    out[53] = 0.003973560225074135 * q7_3 * s3
    q7_4 = 4.333333333333333 * z * q6_4 - 3.3333333333333335 * r2 * q5_4
    out[60] = 0.0005990367431114117 * q7_4 * c4
    out[52] = 0.0005990367431114117 * q7_4 * s4
    q7_5 = 6.5 * z * q6_5 - 5.5 * r2 * q5_5
    out[61] = 9.983945718523527e-05 * q7_5 * c5
    out[51] = 9.983945718523527e-05 * q7_5 * s5
    q7_6 = 13.0 * z * q6_6
    out[62] = 1.958012847746254e-05 * q7_6 * c6
    out[50] = 1.958012847746254e-05 * q7_6 * s6
    q7_7 = 135135.0
    out[63] = 5.233009453691466e-06 * q7_7 * c7
    out[49] = 5.233009453691466e-06 * q7_7 * s7
    if lmax < 8:
        return
    c8 = c7 * x - s7 * y
    s8 = c7 * y + s7 * x
    q8_0 = 1.875 * z * q7_0 - 0.875 * r2 * q6_0
    out[72] = 1.1631066229203195 * q8_0
    q8_1 = 2.142857142857143 * z * q7_1 - 1.1428571428571428 * r2 * q6_1
    out[73] = 0.19385110382005327 * q8_1 * c1
    out[71] = 0.19385110382005327 * q8_1 * s1
    q8_2 = 2.5 * z * q7_2 - 1.5 * r2 * q6_2
    out[74] = 0.02316963852367794 * q8_2 * c2
    out[70] = 0.02316963852367794 * q8_2 * s2
    q8_3 = 3.0 * z * q7_3 - 2.0 * r2 * q6_3
    out[75] = 0.0028519853513317033 * q8_3 * c3
    out[69] = 0.0028519853513317033 * q8_3 * s3
    q8_4 = 3.75 * z * q7_4 - 2.75 * r2 * q6_4
    out[76] = 0.00036818972564450655 * q8_4 * c4
    out[68] = 0.00036818972564450655 * q8_4 * s4
    q8_5 = 5.0 * z * q7_5 - 4.0 * r2 * q6_5
    out[77] = 5.1058728265780266e-05 * q8_5 * c5
    out[67] = 5.1058728265780266e-05 * q8_5 * s5
    q8_6 = 7.5 * z * q7_6 - 6.5 * r2 * q6_6
    out[78] = 7.878532816214047e-06 * q8_6 * c6
    out[66] = 7.878532816214047e-06 * q8_6 * s6
    q8_7 = 15.0 * z * q7_7
    out[79] = 1.4384167144950454e-06 * q8_7 * c7
    out[65] = 1.4384167144950454e-06 * q8_7 * s7
    q8_8 = 2027025.0
    out[80] = 3.5960417862376134e-07 * q8_8 * c8
    out[64] = 3.5960417862376134e-07 * q8_8 * s8
