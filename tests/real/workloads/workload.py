# Python workload for the real-program tests: dicts, lists, a class, json. Deterministic output.
import collections
import json


class Account:
    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance
        self.history = []

    def deposit(self, amount):
        self.balance += amount
        self.history.append(("deposit", amount))

    def __repr__(self):
        return f"Account({self.owner!r}, {self.balance})"


accounts = {f"user{i:04d}": Account(f"user{i:04d}", i * 10) for i in range(2000)}
for i, account in enumerate(accounts.values()):
    for j in range(i % 7):
        account.deposit(j * 3)

totals = collections.Counter()
for account in accounts.values():
    totals[len(account.history)] += 1

squares = [n * n for n in range(10000) if n % 3 == 0]
words = " ".join(f"w{n % 97}" for n in range(5000)).split()
doc = {
    "accounts": len(accounts),
    "richest": repr(max(accounts.values(), key=lambda a: a.balance)),
    "histories": dict(sorted(totals.items())),
    "squares_sum": sum(squares),
    "distinct_words": len(set(words)),
    "nested": [{"k": k, "v": [k] * (k % 5)} for k in range(50)],
}
text = json.dumps(doc, sort_keys=True)
print(len(text), json.loads(text)["richest"], doc["squares_sum"], doc["histories"])
