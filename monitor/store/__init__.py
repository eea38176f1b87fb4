"""The store: every line of SQL, the schema and its migrations."""
