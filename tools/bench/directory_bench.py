"""Benchmark the directory (firmware/directory/): loading, indexing and search as you type.

    .venv/bin/python -m tools.bench.directory_bench [--contacts 10000] [--queries 2000]

Generates a company directory of `--contacts` Swedish-looking people (deterministic: the same
names every run) as a CSV file in memory, then prints: the time to parse it and to index it
(best of 3); the first search after a personal contact changes (100 personal contacts, 10 of
them favourites); and the time per call, p50 and p99 in µs, of `search_t9()` for 1 to 4 keys
(prefixes of real name words) and for 7 digits of a number, of `search_text()` for 1 to 4
letters, and of `lookup_number()` for known numbers written another way (+46...) and for
unknown ones.

Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from firmware.directory import Directory, Number, PersonalContacts, parse_directory, t9

FIRST = ("Anna", "Åsa", "Erik", "Lars", "Karin", "Per", "Maria", "Johan", "Eva", "Örjan",
         "Ingrid", "Sven", "Kerstin", "Nils", "Birgitta", "Jörgen", "Emma", "Oskar", "Märta",
         "Gustav", "Elsa", "Björn", "Sara", "Mikael", "Ulla", "Hélène", "Ebba", "Olle", "Agnes",
         "Göran", "Linnéa", "Åke", "Maja", "Anders", "Lena", "Magnus", "Ida", "Kjell",
         "Anna-Karin", "Karl-Johan", "Britt-Marie", "Lisa", "Fredrik", "Hanna", "Peter")
LAST = ("Andersson", "Berg", "Öberg", "Åström", "Ängström", "Ek", "Lindqvist", "Söderström",
        "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
        "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson",
        "Jönsson", "Lindberg", "Jakobsson", "Magnusson", "Lindström", "Olofsson", "Lindgren",
        "Axelsson", "Bergström", "Lundberg", "Lundgren", "Sandberg", "Mattsson", "Wästberg",
        "Hägg", "Nyström", "Åkesson", "Holm", "Sjöberg", "Wallin", "Engström", "Ström",
        "Müller", "von Ärenhielm", "Dahl", "Björk", "Falk", "Ekström")
DEPARTMENTS = ("Ekonomi", "IT", "Lager", "Sälj", "Ledning", "Support", "Inköp", "HR")


def company_csv(count: int, rng: random.Random) -> bytes:
    """A `;`-separated company directory of `count` people."""
    rows = ["namn;arbete;mobil;anknytning;avdelning;grupper"]
    for i in range(count):
        middle = f" {rng.choice(FIRST)}" if rng.random() < 0.1 else ""
        name = f"{rng.choice(FIRST)}{middle} {rng.choice(LAST)}"
        work = f"08-{100 + i // 100:03d} {i % 100:02d} {rng.randrange(100):02d}"
        mobile = f"07{rng.choice('0236')}-{rng.randrange(1000):03d} {rng.randrange(100):02d} " \
                 f"{rng.randrange(100):02d}" if rng.random() < 0.6 else ""
        extension = f"{1000 + i}" if rng.random() < 0.5 else ""
        department = rng.choice(DEPARTMENTS)
        rows.append(f"{name};{work};{mobile};{extension};{department};{department}")
    return ("\n".join(rows) + "\n").encode()


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {p50:8.1f} µs   p99 {p99:8.1f} µs"


def best_ms(call: Callable[[], object], runs: int = 3) -> float:
    """The fastest of `runs` calls, in ms (keeps other processes out of the figure)."""
    return min(timed(call) for _ in range(runs)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(2026)
    data = company_csv(args.contacts, rng)
    result = parse_directory(data, "bench.csv")
    parsed = best_ms(lambda: parse_directory(data, "bench.csv"))
    indexed = best_ms(lambda: Directory(result.contacts))
    with tempfile.TemporaryDirectory() as folder:
        personal = PersonalContacts(Path(folder) / "contacts.json")
        for i in range(100):
            personal.add(f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                         [Number("mobile", f"070-000 {i:02d} 00")], favourite=i < 10)
        directory = Directory(result.contacts, personal)
        rebuilt = []
        for i in range(3):
            personal.set_favourite(personal.contacts[i].id, False)
            rebuilt.append(timed(lambda: directory.search_t9("2")) / 1000)
        report(directory, rng, args.queries, len(data), len(result.contacts),
               (parsed, indexed, min(rebuilt)))


def report(directory: Directory, rng: random.Random, queries: int, size: int, contacts: int,
           times: tuple[float, float, float]) -> None:
    print(f"company directory: {contacts} contacts, CSV {size / 1024:.0f} KiB")
    print(f"parse CSV          {times[0]:8.1f} ms")
    print(f"build index        {times[1]:8.1f} ms   (Directory(company contacts))")
    print(f"personal change    {times[2]:8.1f} ms   (first search after one, 100 personal "
          "contacts, 10 favourites)")
    names = [c.name for c in directory.contacts]
    numbers = [n.value for c in directory.contacts for n in c.numbers if n.kind != "extension"]

    def word() -> str:
        return rng.choice(rng.choice(names).replace("-", " ").split())

    for keys in (1, 2, 3, 4):
        samples = [t9(word())[:keys] for _ in range(queries)]
        print(f"search_t9   {keys} key(s)  ", percentiles(
            [timed(lambda q=q: directory.search_t9(q)) for q in samples]))
    digits = ["".join(c for c in rng.choice(numbers) if c.isdigit())[2:9] for _ in range(queries)]
    print("search_t9   7 digits   ", percentiles(
        [timed(lambda q=q: directory.search_t9(q)) for q in digits]))
    for letters in (1, 2, 3, 4):
        samples = [word()[:letters] for _ in range(queries)]
        print(f"search_text {letters} letter(s)", percentiles(
            [timed(lambda q=q: directory.search_text(q)) for q in samples]))
    known = ["+46" + "".join(c for c in rng.choice(numbers) if c.isdigit())[1:]
             for _ in range(queries)]
    unknown = [f"+4631{rng.randrange(10**7):07d}" for _ in range(queries)]
    print("lookup_number known    ", percentiles(
        [timed(lambda q=q: directory.lookup_number(q)) for q in known]))
    print("lookup_number unknown  ", percentiles(
        [timed(lambda q=q: directory.lookup_number(q)) for q in unknown]))


if __name__ == "__main__":
    main()
