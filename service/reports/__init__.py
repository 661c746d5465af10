"""Reports: the documents of `reports/` gathered from the database, their API and command line."""
