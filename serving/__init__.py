"""The TorchServe client library: where TorchServe is (endpoints), how to talk to it (auth: the key file, one retry
after an authorization failure, its error messages), predictions (inference), model versions (management and the
version policy) and the operator CLI (`make models`). No processes: starting and stopping TorchServe is deploy's.

Imports only `settings`."""
