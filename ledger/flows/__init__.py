"""The custody flows, one module each: filing, sales, consumption, releases, refunds and
closure. Every command reaches the books only through `ledger.commands.Books`; the rules it
applies are the pure ones of `ledger.custody`, and who may run it is `ledger.access`'s to say.
"""
