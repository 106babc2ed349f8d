"""The analysts' web dashboard (``liaison serve dashboard``): a live feed, an overview of
England, area pages and charts, every view audited by the service."""

__all__: list[str] = []
