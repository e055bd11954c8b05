"""End-to-end conversation tests for any Rasa 3.6 project (`bot test e2e`).

Rasa Open Source's `rasa test` predicts actions without running them; these tests send each
conversation to a live Rasa server over the REST channel, with a real action server behind
it, and compare what came back (bot messages, slots, actions, parse data) with the test case.
The format (close to Rasa Pro's end-to-end tests) is in `format.py` and the README.
"""
