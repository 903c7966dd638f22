"""Services: the web's logic. Each takes a session, owns its transaction, raises named errors."""
