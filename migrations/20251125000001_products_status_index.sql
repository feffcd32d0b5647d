-- runner:no-transaction
-- Built CONCURRENTLY so writes to products continue during the build;
-- that cannot run inside a transaction, hence the marker above.
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_status_idx ON products (status) WHERE status <> 'archived';
