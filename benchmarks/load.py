"""A bounded load generator, run as its own process: ``python -m benchmarks.load SPEC.json``.

It sends a fixed number of requests to 127.0.0.1 only, from at most eight threads, and stops by itself.
A *scan* is what a tablet does when a label is scanned: POST /scan/ with the payload, then GET the
flask page it is redirected to; a *bare* request is one GET of the floor view. It prints one JSON
line: completed, errors, seconds, per_second. Standard library only, so it costs the server little.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlencode

MAX_CONCURRENCY = 8
LOOPBACK = "127.0.0.1"


class Load:
    def __init__(self, spec: dict[str, Any]) -> None:
        if spec["host"] != LOOPBACK:
            raise SystemExit("the load generator only talks to 127.0.0.1")
        self.spec = spec
        self.total = int(spec["requests"])
        self.concurrency = max(1, min(int(spec["concurrency"]), MAX_CONCURRENCY))
        self.lock = threading.Lock()
        self.issued = self.completed = self.errors = 0
        self.first_error = ""

    def _next(self) -> int | None:
        with self.lock:
            if self.issued >= self.total:
                return None
            self.issued += 1
            return self.issued - 1

    def _request(self, method: str, path: str, headers: dict[str, str], body: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(self.spec["host"], int(self.spec["port"]), timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("Location") or ""
        finally:
            conn.close()

    def _one(self, n: int, session: dict[str, str]) -> str:
        """'' when the request (or the scan's two requests) answered as expected, else what went wrong."""
        target = self.spec["targets"][n % len(self.spec["targets"])]
        cookie = f"{self.spec['session_cookie']}={session['session']}; {self.spec['csrf_cookie']}={session['csrf']}"
        if self.spec["mode"] == "bare":
            status, _ = self._request("GET", target["bare"], {"Cookie": cookie})
            return "" if status == 200 else f"bare view answered {status}"
        body = urlencode({"payload": target["payload"], "csrfmiddlewaretoken": session["csrf"]})
        form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        status, location = self._request("POST", "/scan/", form, body)
        if status != 302 or not location.startswith("/"):
            return f"POST /scan/ answered {status}"
        status, _ = self._request("GET", location, {"Cookie": cookie})
        return "" if status == 200 else f"GET {location} answered {status}"

    def _worker(self, session: dict[str, str]) -> None:
        while (n := self._next()) is not None:
            try:
                problem = self._one(n, session)
            except OSError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            with self.lock:
                if problem:
                    self.errors += 1
                    self.first_error = self.first_error or problem
                else:
                    self.completed += 1

    def run(self) -> dict[str, Any]:
        sessions = self.spec["sessions"]
        threads = [
            threading.Thread(target=self._worker, args=(sessions[i % len(sessions)],), daemon=True)
            for i in range(self.concurrency)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        return {
            "mode": self.spec["mode"],
            "completed": self.completed,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(seconds, 4),
            "per_second": round(self.completed / seconds, 3) if seconds > 0 else 0.0,
            "concurrency": self.concurrency,
        }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m benchmarks.load SPEC.json")
    with open(args[0], encoding="utf-8") as handle:
        spec = json.load(handle)
    print(json.dumps(Load(spec).run()), flush=True)


if __name__ == "__main__":
    main()
