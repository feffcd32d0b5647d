-- Products move through a small life cycle.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'product_status') THEN
        CREATE TYPE product_status AS ENUM ('draft', 'active', 'archived');
    END IF;
END
$$;

ALTER TABLE products
    ADD COLUMN status product_status NOT NULL DEFAULT 'draft';

COMMENT ON COLUMN products.status IS 'draft -> active -> archived; archived products are read-only.';
