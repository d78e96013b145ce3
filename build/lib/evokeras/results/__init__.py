"""Reading a run directory: the front as a table or JSON (:mod:`.report`), and the
figures of a run (:mod:`.plotting`). Nothing here prints."""
