-- The demo database of the lab's database hosts: a bookings table of known size.
CREATE TABLE bookings (
    id integer PRIMARY KEY,
    guest text NOT NULL,
    arrival date NOT NULL,
    nights integer NOT NULL
);
INSERT INTO bookings (id, guest, arrival, nights)
SELECT n, 'guest-' || lpad(n::text, 4, '0'), date '2025-01-01' + (n % 365), 1 + n % 14
FROM generate_series(1, 250) AS n;
