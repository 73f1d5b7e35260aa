"""The composition root: where the businesses (the exchange, the broker, the simulated crowd)
are wired into one running program (`serve`, `demo`, the test stacks). Nothing below this
package imports it, and no business imports another's insides from here."""
