"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by test_schemathesis.py).

The one rule of a request that JSON Schema cannot state: the effective drop, shoe plus heel
insert, is at most 30 mm (docs/fields.md). A generated body past it is answered 422, as it
should be, and schemathesis would call that a schema-valid request rejected; such bodies are
left out.
"""

import schemathesis


@schemathesis.hook
def filter_body(ctx, body):
    footwear = body.get("footwear") if isinstance(body, dict) else None
    if not isinstance(footwear, dict):
        return True
    drop, insert = footwear.get("current_drop_mm"), footwear.get("heel_insert_mm", 0)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (drop, insert))
    return not numbers or drop + insert <= 30
