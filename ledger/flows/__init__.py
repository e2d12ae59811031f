"""The custody flows, one module each: filing, sales, consumption, releases, refunds and
closure; and the bank's: statement import (statements, reconcile) and its answers to
instructions (instructions). Every command reaches the books only through
`ledger.commands.Books`; the rules it applies are the pure ones of `ledger.custody` and
`ledger.bank`, and who may run it is `ledger.access`'s to say.
"""
