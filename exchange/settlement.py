"""Settlement: accounts in exchange credits and a double-entry journal.

Every movement of money is one journal transaction whose postings sum to zero, written in the
same database transaction as the ledger entry that records it (``account.deposited``,
``account.withdrawn``, ``licence.granted``). Deposits and withdrawals move credits between a
member and the one ``external`` account (money entering or leaving the exchange), so the sum of
all balances is always zero and no use case can create or destroy credits. Members' balances and
the fee account never go below zero: the code refuses an overdraft with a clear error, and the
database's CHECK constraint refuses it again.

Accounts are locked (``SELECT ... FOR UPDATE``) in id order before the ledger's head row, in
every use case that moves money, so concurrent purchases against one balance queue instead of
both spending it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from exchange.errors import Conflict, Forbidden, InvalidInput, NotFound
from exchange.models import (
    EXTERNAL_ACCOUNT,
    FEES_ACCOUNT,
    MEMBER_ACCOUNT,
    Account,
    JournalPosting,
    JournalTransaction,
    Member,
)
from exchange.statements import StatementPolicy, check_statement, record_statement
from ledger.audit import OPERATOR
from ledger.entry import Entry, SignedStatement

FEES = "exchange:fees"
EXTERNAL = "external"
DEPOSITED, WITHDRAWN = "account.deposited", "account.withdrawn"
MAX_AMOUNT = 10**15  # credits in one movement; keeps every sum far inside a signed 64-bit column
_REFERENCE = re.compile(r"^[\x20-\x7e]{1,200}$")


class InsufficientFunds(Conflict):
    """A debit larger than the balance: nothing was moved."""


def member_account_id(member_id: str) -> str:
    return f"member:{member_id}"


def open_account(session: Session, member_id: str) -> Account:
    """The account of a newly registered member (in the registration's transaction)."""
    account = Account(id=member_account_id(member_id), kind=MEMBER_ACCOUNT, member_id=member_id)
    session.add(account)
    return account


def lock_accounts(session: Session, account_ids: Sequence[str]) -> dict[str, Account]:
    """Lock the accounts, always in id order (a fixed order cannot deadlock)."""
    ids = sorted(set(account_ids))
    rows = session.exec(
        select(Account).where(col(Account.id).in_(ids)).order_by(col(Account.id)).with_for_update()
    ).all()
    found = {row.id: row for row in rows}
    missing = [account_id for account_id in ids if account_id not in found]
    if missing:
        raise NotFound(f"no account {missing[0]}")
    return found


@dataclass(frozen=True)
class Movement:
    """A journal transaction to write: postings by account id, summing to zero."""

    kind: str
    reference: str
    postings: Mapping[str, int]

    def __post_init__(self) -> None:
        if sum(self.postings.values()) != 0:
            raise ValueError(f"postings of a {self.kind} must sum to zero: {dict(self.postings)}")


def check_funds(accounts: Mapping[str, Account], movement: Movement) -> None:
    """Refuse, before anything is written, a movement that would overdraw an account."""
    for account_id, amount in movement.postings.items():
        account = accounts[account_id]
        if account.kind != EXTERNAL_ACCOUNT and account.balance + amount < 0:
            owner = account.member_id or account.id
            raise InsufficientFunds(
                f"insufficient funds: {owner} has {account.balance} credits, {-amount} are needed"
            )


def apply(
    session: Session, accounts: Mapping[str, Account], movement: Movement, *, seq: int
) -> JournalTransaction:
    """Write the journal transaction and update the (locked) balances."""
    check_funds(accounts, movement)
    transaction = JournalTransaction(
        kind=movement.kind, reference=movement.reference, seq=seq, created_at=datetime.now(UTC)
    )
    session.add(transaction)
    session.flush()
    assert transaction.id is not None
    for account_id, amount in sorted(movement.postings.items()):
        if amount == 0:
            continue
        session.add(
            JournalPosting(transaction_id=transaction.id, account_id=account_id, amount=amount)
        )
        accounts[account_id].balance += amount
        session.add(accounts[account_id])
    session.flush()
    return transaction


def parse_amount(value: object, *, what: str = "amount") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_AMOUNT:
        raise InvalidInput(f"{what} must be a whole number of credits from 1 to {MAX_AMOUNT}")
    return value


# -- deposits and withdrawals (operators) -------------------------------------------------------


def record_cash(
    session: Session,
    signed: SignedStatement,
    *,
    entry_type: str,
    member_id: str,
    caller: Member,
    policy: StatementPolicy,
) -> tuple[Entry, Account]:
    """An operator credits (``account.deposited``) or debits (``account.withdrawn``) a member."""
    if entry_type not in (DEPOSITED, WITHDRAWN):
        raise ValueError(f"money moves in or out with {DEPOSITED} or {WITHDRAWN}")
    if OPERATOR not in caller.role_set:
        raise Forbidden("only an operator may record deposits and withdrawals")
    check_statement(session, signed, caller=caller, expected_type=entry_type, policy=policy)
    body = signed.statement.body
    if set(body) != {"member", "amount", "reference"}:
        raise InvalidInput(f"{entry_type} body must have exactly member, amount and reference")
    if body["member"] != member_id:
        raise InvalidInput(f"the statement names {body['member']!r}, the URL {member_id!r}")
    amount = parse_amount(body["amount"])
    reference = body["reference"]
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
        raise InvalidInput("reference must be 1-200 printable ASCII characters (e.g. a bank ref)")
    if session.get(Member, member_id) is None:
        raise NotFound(f"no member {member_id!r}")
    account_id = member_account_id(member_id)
    sign = 1 if entry_type == DEPOSITED else -1
    movement = Movement(
        "deposit" if sign > 0 else "withdrawal",
        reference,
        {account_id: sign * amount, EXTERNAL: -sign * amount},
    )
    accounts = lock_accounts(session, [account_id, EXTERNAL])
    check_funds(accounts, movement)  # before the entry: a refused withdrawal logs nothing
    entry = record_statement(session, signed)
    apply(session, accounts, movement, seq=entry.seq)
    return entry, accounts[account_id]


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    seq: int
    kind: str
    reference: str
    amount: int
    time: datetime


def account_of(session: Session, member_id: str) -> Account:
    account = session.get(Account, member_account_id(member_id))
    if account is None:
        raise NotFound(f"no account of member {member_id!r}")
    return account


def history(session: Session, account_id: str, *, limit: int = 100) -> list[Posting]:
    rows = session.exec(
        select(JournalTransaction, JournalPosting)
        .join(JournalPosting, col(JournalPosting.transaction_id) == col(JournalTransaction.id))
        .where(JournalPosting.account_id == account_id)
        .order_by(col(JournalTransaction.seq).desc())
        .limit(limit)
    ).all()
    return [Posting(t.seq, t.kind, t.reference, p.amount, t.created_at) for t, p in rows]


@dataclass(frozen=True)
class Books:
    """Every balance, and the checks an auditor of the books makes."""

    accounts: list[Account]
    total: int  # the sum of all balances: always 0
    unbalanced_transactions: int  # journal transactions whose postings do not sum to 0
    drifted_accounts: list[str]  # accounts whose balance is not the sum of their postings


def books(session: Session) -> Books:
    accounts = list(session.exec(select(Account).order_by(col(Account.id))).all())
    sums = dict(
        session.exec(
            select(JournalPosting.account_id, func.sum(JournalPosting.amount)).group_by(
                col(JournalPosting.account_id)
            )
        ).all()
    )
    unbalanced = session.exec(
        select(func.count()).select_from(
            select(JournalPosting.transaction_id)
            .group_by(col(JournalPosting.transaction_id))
            .having(func.sum(JournalPosting.amount) != 0)
            .subquery()
        )
    ).one()
    drifted = [a.id for a in accounts if a.balance != int(sums.get(a.id) or 0)]
    return Books(accounts, sum(a.balance for a in accounts), int(unbalanced), drifted)


__all__ = [
    "EXTERNAL",
    "FEES",
    "FEES_ACCOUNT",
    "Books",
    "InsufficientFunds",
    "Movement",
    "apply",
    "books",
    "lock_accounts",
    "member_account_id",
    "open_account",
    "record_cash",
]
