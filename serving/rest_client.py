"""A minimal client of TF Serving's REST API (standard library only)."""

import json
import urllib.error
import urllib.request


class HTTPFailure(Exception):
  """A non-200 answer: HTTP status and the server's "error" text."""

  def __init__(self, status, message):
    super().__init__(f"HTTP {status}: {message}")
    self.status, self.message = status, message


def _call(request, timeout):
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return json.loads(response.read())
  except urllib.error.HTTPError as e:
    body = e.read()
    try:
      message = json.loads(body).get("error", body.decode(errors="replace"))
    except ValueError:
      message = body.decode(errors="replace")
    raise HTTPFailure(e.code, message) from None
  except urllib.error.URLError as e:       # server not up (yet): like UNAVAILABLE
    raise HTTPFailure(503, str(e.reason)) from None


def get(host_port, path, timeout=60.0):
  """JSON answer of GET http://host_port/path."""
  return _call(urllib.request.Request(f"http://{host_port}{path}"), timeout)


def post(host_port, path, body, timeout=60.0):
  """JSON answer of POST http://host_port/path with a JSON body."""
  data = json.dumps(body).encode()
  request = urllib.request.Request(f"http://{host_port}{path}", data=data,
                                   headers={"Content-Type": "application/json"})
  return _call(request, timeout)
