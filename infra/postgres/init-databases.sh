#!/bin/sh
# Creates the three databases distill needs on one PostgreSQL server (run once, by the postgres image,
# from /docker-entrypoint-initdb.d on an empty data directory):
#   registry     model versions, aliases, history   (DISTILL_REGISTRY_URL)
#   predictions  the model servers' prediction log  (DISTILL_PREDICTION_LOG_URL)
#   prefect      Prefect server's state              (PREFECT_API_DATABASE_CONNECTION_URL)
# Tables are created by their owners on first use. The names come from DISTILL_DATABASES.
set -eu
for db in ${DISTILL_DATABASES:-registry predictions prefect}; do
  echo "creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
