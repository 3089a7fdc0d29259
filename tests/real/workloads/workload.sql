-- sqlite3 workload for the real-program tests: a table of 1000 rows, an index, aggregates.
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, grp INTEGER);
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000)
INSERT INTO items(id, name, price, grp) SELECT x, 'item-' || x, x * 1.25, x % 10 FROM n;
COMMIT;
CREATE INDEX items_grp ON items(grp);
SELECT count(*), sum(price), avg(price), min(name), max(name) FROM items;
SELECT grp, count(*), printf('%.2f', sum(price)) FROM items GROUP BY grp ORDER BY grp;
UPDATE items SET price = price * 2 WHERE grp = 3;
DELETE FROM items WHERE id % 7 = 0;
SELECT count(*), printf('%.2f', sum(price)) FROM items;
SELECT group_concat(name, ',') FROM (SELECT name FROM items ORDER BY price DESC LIMIT 5);
