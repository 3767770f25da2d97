#include "predict.h"

#include "mem.h"

MtlPredictor *
mtl_predictor_create(const MtlTrained *trained)
{
	MtlPredictor *p = mtl_alloc(sizeof(MtlPredictor));

	p->trained = trained;
	p->work = mtl_work_create(&trained->model, 1);
	p->slots = mtl_alloc(sizeof(int32_t) * trained->model.layout.n_slots);
	p->nums = mtl_alloc(sizeof(float) * (trained->model.shape.n_num + 1));
	return p;
}

void
mtl_predictor_free(MtlPredictor *p)
{
	if (p == NULL)
		return;
	mtl_work_free(p->work, &p->trained->model);
	mtl_free(p->slots);
	mtl_free(p->nums);
	mtl_free(p);
}

void
mtl_predictor_run(MtlPredictor *p, double *out)
{
	const MtlModel *model = &p->trained->model;

	mtl_model_assemble(model, p->work, model->params, p->slots, p->nums, 1);
	mtl_model_forward(model, p->work, model->params, 1);
	for (int t = 0; t < model->spec.n_tasks; t++)
		out[t] = mtl_task_output(&model->spec.tasks[t], mtl_work_logit(p->work, t)[0]);
}
