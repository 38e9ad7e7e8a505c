"""The tracker's writes, by concern: the exchange of lists and replies, flags and deadlines, partners
and webhooks, imports and exports. Import from the concern's module."""
