"""Training and measuring the models, on top of the product (nothing in it imports training): the data (MNIST,
pendigits, UNIPEN; stroke augmentation, non-digits, the golden set), the training runs (train, finetune,
base_training, the refusal head, the pair reader), the learning loop (simulate, screen, retrain, gate, registration),
the evaluation sets (canvas, numbers, photos) and the live evaluation, and archiving (torch-model-archiver)."""
