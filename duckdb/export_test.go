package duckdb

import "database/sql"

// DB exposes the database to the external benchmarks, which grow a trail in bulk.
func DB(s *Store) *sql.DB { return s.db }
