"""The lines tunesmith writes in a trial's log about its attempts: where each retry starts, and how an attempt
ended where the trial's own output cannot say.

A trial's attempts share its ``trial.log``. It just stopped at the trial's last line when the coordinator ended the
attempt (a timeout, ``memory_limit``, the grace period's end) or it died of a signal, and a retry's output ran on
after the first attempt's with no mark between them: ``tunesmith: --- attempt 2 ---`` opens each retry, and
``tunesmith: attempt 1 ended: memory: memory use 229 MiB exceeded memory_limit 200 MiB; killed`` closes an attempt
that failed (but for an exception, whose traceback ends the log and says it).
"""

from __future__ import annotations

from tunesmith.evaluation.output_tail import OUTPUT_LABEL, STDERR_LABEL
from tunesmith.records import Failure


def attempt_header(attempt: int) -> str:
    """The line that opens attempt ``attempt`` in the log (a first attempt has none: it opens the file)."""
    return f"tunesmith: --- attempt {attempt} ---\n" if attempt > 1 else ""


def without_header(output: str, attempt: int) -> str:
    """An attempt's output read from where it started, without its header: the trial's own words."""
    return output.removeprefix(attempt_header(attempt))


def attempt_ending(attempt: int, failure: Failure) -> str:
    """The line that closes a failed attempt: its failure, without the output's tail the reason quotes (the log
    holds that output already)."""
    reason = failure.message.split(STDERR_LABEL)[0].split(OUTPUT_LABEL)[0]
    return f"tunesmith: attempt {attempt} ended: {failure.kind.value}: {reason}\n"


def write_ending(log_path: str, attempt: int, failure: Failure) -> None:
    """Append :func:`attempt_ending` to the log at ``log_path``, once the attempt's own writes are over. A log that
    takes no line (a full disk, a folder gone) is left as it is: the reason is recorded with the trial anyway."""
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(attempt_ending(attempt, failure))
    except OSError:
        pass
