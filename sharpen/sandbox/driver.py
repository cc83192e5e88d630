"""The untrusted half of a function's unit test: defines the model's function from
candidate.py (the prompt and the body, nothing after it), then answers the judge's calls.

Shipped as values.py + this file (`encode`, `loads` come from values.py) and started by
judge.py with calls on fd 3 and answers on fd 4, one JSON line each: `["ok", <value>]`,
`["raised", <exception name>]` or `["unpassable", <type name>]`. Nothing here is trusted:
the function can rewrite any of it, and still only plain values reach the judge.
"""
import json
import os
import sys


def serve(entry_point: str) -> None:
    calls, answers = os.fdopen(3, "r"), os.fdopen(4, "w")
    namespace = {"__name__": "__candidate__"}
    with open("candidate.py") as fh:
        exec(compile(fh.read(), "candidate.py", "exec"), namespace)  # a broken body: the judge gets no answer
    function = namespace[entry_point]
    for line in iter(calls.readline, ""):
        try:
            args, kwargs = loads(line)
            value = function(*args, **kwargs)
        except BaseException as err:  # sys.exit() in the body is an exception like any other
            reply = ["raised", type(err).__name__]
        else:
            try:
                reply = ["ok", encode(value)]
            except Exception:
                reply = ["unpassable", type(value).__name__]
        answers.write(json.dumps(reply, separators=(",", ":")) + "\n")
        answers.flush()


serve(sys.argv[1])
