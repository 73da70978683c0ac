"""The process exit codes of the `tunesmith` commands, defined once for the CLI and for :mod:`tunesmith.cycle`,
whose report carries the code its command exits with (the cycle is a layer below the CLI and cannot import it).

0 done (failed trials are results, not errors); 1 a failure (a step, every trial, the store once open); 2 input the
user must fix (:class:`tunesmith.errors.UserInputError`); 3 a promotion gate rejected; 4 `drift` found drift; 75 a
passing failure, retry later (:class:`tunesmith.errors.TemporaryFailure`); 130 interrupted.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_REJECTED = 3  # `promote` (and `cycle`'s promote step): a gate said no (the report says which)
EXIT_DRIFT = 4  # `drift`: the data moved beyond the spec's drift thresholds
# sysexits' EX_TEMPFAIL: the failure is the infrastructure's and passes (a Ray cluster lost, a store's server not
# answering), and trying again later works; schedulers retry it, where 2 says the input must change first
EXIT_TEMPFAIL = 75
