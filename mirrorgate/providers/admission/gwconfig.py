"""GatewayConfig admission: the OpenAPI schema and CEL rules of
``deploy/kubernetes/crds/mirrorgate.dev_gatewayconfigs.yaml``, with the apiserver's messages.

Rules (one per field type of ``model.gwconfig.FIELDS``):
1. ``int``: ``minimum`` (the field's least value).
2. ``bytes``: an integer with ``minimum``, or a quantity string matching ``BYTES_POSITIVE`` (least
   value 1) or ``BYTES`` (least value 0): digits and an optional suffix Ki, Mi, Gi, k, M or G.
3. ``duration``: a GEP-2257 duration (``DURATION``); a field whose least value is 1 also has the
   CEL rule ``duration(self) > duration('0s')`` (message ``MSG_POSITIVE_DURATION``).
4. ``format``: ``text`` or ``json``; ``string`` (a log destination): at least one character.
"""

from typing import Final

from mirrorgate.errors import FieldError
from mirrorgate.gocompat import parse_duration_ns
from mirrorgate.model.gwconfig import ACCESS_LOG_FORMATS, FIELDS, GatewayConfig, value_of
from mirrorgate.providers.admission.meta import check_metadata, is_dns1123_subdomain
from mirrorgate.providers.admission.schema import DURATION, Errors, Pattern, check_enum, check_int_range, check_string

BYTES: Final = Pattern(r"^[0-9]+(Ki|Mi|Gi|k|M|G)?$")
BYTES_POSITIVE: Final = Pattern(r"^[0-9]*[1-9][0-9]*(Ki|Mi|Gi|k|M|G)?$")
MSG_POSITIVE_DURATION: Final = "must be greater than 0s"


def admit_gateway_config(cfg: GatewayConfig) -> list[FieldError]:
    e = Errors(has_cel=True)  # positive durations are CEL rules
    check_metadata(e, cfg, is_dns1123_subdomain)
    for field in FIELDS:
        value = value_of(cfg.spec, field)
        if value is None:
            continue
        path = field.path
        if field.type == "int":
            assert isinstance(value, int)
            check_int_range(e, path, value, field.minimum, None)
        elif field.type == "bytes":
            if isinstance(value, int):
                check_int_range(e, path, value, field.minimum, None)
            else:
                assert isinstance(value, str)
                check_string(e, path, value, pattern=BYTES_POSITIVE if field.minimum else BYTES)
        elif field.type == "duration":
            assert isinstance(value, str)
            check_string(e, path, value, pattern=DURATION)
            if field.minimum and DURATION.search(value) and parse_duration_ns(value) <= 0:
                e.rule(path, "string", MSG_POSITIVE_DURATION)
        elif field.type == "format":
            check_enum(e, path, value, ACCESS_LOG_FORMATS)
        elif field.type == "string":
            assert isinstance(value, str)
            check_string(e, path, value, min_len=1)
    return e.result()
