"""What the tests share: a live service, page servers, free ports, inventories, log helpers."""
