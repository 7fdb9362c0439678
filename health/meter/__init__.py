"""The glucose-meter simulator: a simulated patient's readings sent as a device would.

- ``health.meter.trace``: ``GlucoseTrace(seed, kind, start_ms)``, a deterministic model of
  one patient's glucose (meals, insulin, the dawn rise, exercise, an occasional low) read
  by a CGM every 5 minutes or a meter four times a day;
- ``health.meter.runner``: ``run_meter`` sends each reading as a FHIR ``Observation``
  through ``HealthClient.upload_record``, in real time or accelerated, with bounded
  retries; ``bighealth meter simulate`` (``node/cli/meter_command.py``) runs it.
"""

from health.meter.trace import (
    CGM_INTERVAL_MS,
    DEVICE_KINDS,
    GlucoseTrace,
    Profile,
    Reading,
    TraceError,
    TraceKind,
    backfill_start,
    profile_for,
)

__all__ = [
    "CGM_INTERVAL_MS",
    "DEVICE_KINDS",
    "GlucoseTrace",
    "Profile",
    "Reading",
    "TraceError",
    "TraceKind",
    "backfill_start",
    "profile_for",
]
