-- config checking: every key, type and range error names the key
CREATE TABLE tiny (user_id bigint, item_id bigint, clicked float8);
INSERT INTO tiny VALUES (1, 10, 1), (2, 10, 0), (1, 11, 0), (2, 11, 1);

SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 1}') IS NOT NULL AS trained FROM tiny;

-- errors
SELECT mtl_train(user_id, item_id, ARRAY[clicked], NULL) FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '[]') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": []}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": "ctr"}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": ["ctr"]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr"}]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "ranking"}]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "", "type": "binary"}]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary", "weigth": 1}]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary", "weight": -1}]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked, clicked], '{"tasks": [{"name": "ctr", "type": "binary"}, {"name": "ctr", "type": "binary"}]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "epoch": 3}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "model": "xgboost"}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "interaction": "dcn"}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 0}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "embedding_l2": -1}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "validate_every": -5}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "interaction": 1}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": 2.5}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "epochs": "10"}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "learning_rate": 0}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "l2": -0.1}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "experts": 100}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "expert_units": []}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "expert_units": [8, 8, 8, 8, 8]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "tower_units": {"a": 1}}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "bottom_units": [0]}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "embedding_dim": 1000}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "batch_size": -5}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "seed": -1}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "id_dropout": 1}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "validation_fraction": 0.6}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "validation_fraction": "10%"}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "patience": -1}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "patience": 1.5}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "threads": 1000}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "verbose": "yes"}') FROM tiny;
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "max_memory_mb": 0}') FROM tiny;
-- a tiny memory limit stops training with a clear error
SELECT mtl_train(user_id, item_id, ARRAY[clicked], '{"tasks": [{"name": "ctr", "type": "binary"}], "max_memory_mb": 0.001}') FROM tiny;
