class ApplicationError(Exception):
    """A failure the caller can act on; `code` is stable for API clients, `message` is for people."""

    def __init__(self, message: str, *, code: str = "error", status: int = 400, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra or {}
