# The compiled rule kernel (service/_kernel.c); buffers are C-contiguous numpy arrays.
from typing import Any

def evaluate(
    code: Any,
    nregs: int,
    nslots: int,
    creg: Any,
    cval: Any,
    ctx: Any,
    n: int,
    regs: Any,
    out: Any,
    /,
) -> None: ...
def combine(
    code: Any,
    nregs: int,
    nslots: int,
    creg: Any,
    cval: Any,
    segments: Any,
    table: Any,
    factor: Any,
    reasons: Any,
    special: Any,
    limits: Any,
    ctx: Any,
    n: int,
    probs: Any,
    flags: Any,
    bounds: Any,
    reason_out: Any,
    rows: Any,
    /,
) -> None: ...
def features(inputs: Any, n: int, limits: Any, derived: Any, X: Any, /) -> None: ...
def linear(
    xt: Any,
    n: int,
    fill: Any,
    mean: Any,
    scale: Any,
    coef: Any,
    intercept: Any,
    beta: float,
    groups: Any,
    probs: Any,
    factors: Any,
    /,
) -> None: ...
