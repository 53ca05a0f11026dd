"""State changes of the manufacturing app, by sub-domain: reagent lots and culture."""
