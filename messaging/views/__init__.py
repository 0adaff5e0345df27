"""The REST API of messaging, one module per resource (messaging/urls.py routes to them).

Each view parses its input, calls one service or selector, renders. Authentication is the
API token (`Authorization: Token KEY`) or the session cookie (with its CSRF token on
writes); no credentials get 401. Every other error has the body
{"code", "detail", "<field>": ["..."]} (messaging.errors). The OpenAPI document at
/api/schema/ says exactly what each view takes and answers: a request it allows is refused
only for a rule JSON Schema cannot state, named in the operation's description.

- `messages`, `conversations`, `users`, `tickets`, `tokens`, `uploads`: the resources.
- `common`: the caller, the send throttle, words the document repeats.
- `serializers`, `fields`, `schema`: the shapes, strict fields and document refinements
  (notifications' views use them through messaging.api).
- `upload_limit`: the upload handler that stops a multipart body past the limit.
"""
