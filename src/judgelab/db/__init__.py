from judgelab.db.engine import Database, make_engine, migrate, open_database

__all__ = ["Database", "make_engine", "migrate", "open_database"]
